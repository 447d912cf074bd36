"""``python -m breakwater``: the same CLI as the ``breakwater`` command."""

from breakwater.cli.main import main

raise SystemExit(main())
