"""Providers from elsewhere: SMTP servers out of a Thunderbird profile, and TOML files a team
shares. No password is ever read or written: Thunderbird keeps them in its own encrypted
store, and a settings file that carried them would be a secret on disk. Whatever the input,
the only exception raised on purpose is a one-line ``UserInputError``.
"""
