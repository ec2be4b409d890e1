# hostingmail: the MX marks a message the sender's DMARC policy quarantines (p=quarantine, or p=reject relaxed by
# MX_DMARC_REJECT=false), or one rspamd scores into "add header" / "rewrite subject" (or past the customer's score to
# mark), with "X-Spam-Flag: YES"; it is filed into the mailbox's Junk folder.
require ["fileinto", "mailbox"];
if header :is "X-Spam-Flag" "YES" {
  fileinto :create "Junk";
  stop;
}
