from runegen.cli import main

if __name__ == "__main__":  # not when a spawned process imports this module (runegen train's drawing)
    main()
