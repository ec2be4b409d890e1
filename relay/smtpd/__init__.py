"""The relay process (`manage.py runrelay`): its event loop, sessions, threads, TLS, supervisor and health HTTP.

Everything here runs inside a runrelay process. The rules a session applies (AUTH, sender policy, accepting a
message) are plain synchronous functions in relay.submission, run from this package's threads; delivery is the
worker's (relay.delivery), handed over by task name (relay.handoff) and never imported here.

The loop leans on internals of aiosmtpd 1.4.6 and CPython 3.11's asyncio (both pinned in pyproject.toml); a
version change must re-run tests/relay (test_stream, test_turns, test_session_memory, test_shutdown cover them):

- aiosmtpd.smtp.SMTP: `_getaddr` (path parsing, cached in protocol.py), `_handle_client`'s state
  (`_reader`, `_writer`, `_handler_coroutine`, `_tls_protocol`, `_original_transport`, `_reply_after_tls`,
  `_timeout_handle`, `_reset_timeout`, `_set_post_data_state`, `_call_handler_hook`, `_handle_hooks`,
  `_smtp_methods`, `_auth_methods`, `_login_data`, `_start_tls`, `_first_response`), and
  `aiosmtpd.proxy_protocol.get_proxy` for the PROXY header (protocol.py, server.py);
- asyncio.StreamReader's `_buffer`, `_eof`, `_exception`, `_wait_for_data`, `_maybe_resume_transport`
  (stream.py, fairloop.py read a message's content from the buffer in bulk);
- asyncio.sslproto.SSLProtocol's `_app_transport` and `asyncio.protocols._feed_data_to_buffered_proto`
  (the implicit-TLS upgrade in protocol.py);
- asyncio.selector_events: `BaseSelectorEventLoop._process_events`, `_make_socket_transport`, and
  `_SelectorSocketTransport._read_ready_cb` (fairloop.py: the turn budget, and breaking the transport's
  reference cycle when a connection is lost).
"""
