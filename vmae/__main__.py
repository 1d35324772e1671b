from vmae.cli import main

raise SystemExit(main())
