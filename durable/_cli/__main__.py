"""``python -m durable._cli``: the ``durable`` command without its console script."""

from . import main

raise SystemExit(main())
