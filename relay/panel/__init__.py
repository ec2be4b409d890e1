"""The panel's pages for mail in transit: the message log, support's actions on messages, AUTH lockouts and smart
hosts per sender domain. Runs in the panel (gunicorn) process; reads through selectors, writes through services.
"""
