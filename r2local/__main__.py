from r2local.cli.main import main

main()
