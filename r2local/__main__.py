from r2local.cli import main

main()
