"""`python -m aura_agent` is the same as the `aura-agent` command."""

from aura_agent.cli import main

raise SystemExit(main())
