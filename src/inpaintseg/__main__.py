from inpaintseg.cli import main

raise SystemExit(main())
