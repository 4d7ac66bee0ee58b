from mia_kd.cli import main

raise SystemExit(main())
