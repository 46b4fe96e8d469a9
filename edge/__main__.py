from edge.cli.main import main

main()
