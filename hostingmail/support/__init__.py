"""The support console: provider staff find any account and change its limits and status.

It lives in the project package because it shows accounts data beside relay data (messages, lockouts).
"""
