from localmesos.cli import main

raise SystemExit(main())
