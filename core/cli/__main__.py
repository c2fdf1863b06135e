from offramp.core.cli.app import main

main()
