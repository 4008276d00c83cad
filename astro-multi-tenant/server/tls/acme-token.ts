/** ACME tokens are base64url (RFC 8555 §8.3); anything else is never stored nor answered. */
export const ACME_TOKEN = /^[A-Za-z0-9_-]{16,256}$/;
