"""`python -m cagsr ...` is the same as the `cagsr` command."""

from cagsr.cli.main import main

if __name__ == "__main__":
    main()
