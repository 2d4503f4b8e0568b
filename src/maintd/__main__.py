from maintd.cli import main

main()
