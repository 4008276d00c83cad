/**
 * The platform's favicon: a 32×32 PNG inside an ICO container (169 bytes), answered at
 * `/_platform/favicon.ico` on every host and at a site's `/favicon.ico` when the site has none of
 * its own, so browsers do not log a 404 on every page view. Kept in code: no file to lose in a
 * deploy, nothing to read from disk.
 */
export const DEFAULT_FAVICON = Buffer.from(
  'AAABAAEAICAAAAEAIACTAAAAFgAAAIlQTkcNChoKAAAADUlIRFIAAAAgAAAAIAgGAAAAc3p69AAAAFpJREFUeNpjYEADxo6h/2mJGXABWluM1yH0thzDEQPqgIGyHO6IUQeMOoAYRRZ7f5CFRx0wfB1AqbpRB4w6YNQBow4Yeg4YbQ+MOmDY9g0GT9dswDunA9k9BwDsFIKKUz+/CQAAAABJRU5ErkJggg==',
  'base64',
);

export const DEFAULT_FAVICON_TYPE = 'image/x-icon';
