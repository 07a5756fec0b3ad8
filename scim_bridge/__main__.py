from scim_bridge.cli import main

raise SystemExit(main())
