from iotml.cli import main

main()
