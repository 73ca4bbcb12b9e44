from ems.cli import main

raise SystemExit(main())
