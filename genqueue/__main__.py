"""``python -m genqueue`` runs the CLI."""

if __name__ == "__main__":
    from genqueue.cli import main

    main()
