"""``python -m loanserver ...``: the same entry as the ``loanserver`` console script."""

from loanserver.admin import main

raise SystemExit(main())
