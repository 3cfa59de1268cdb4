from runegen.cli import main

main()
