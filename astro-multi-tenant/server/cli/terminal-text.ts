/**
 * Characters that act on a terminal or on how a line reads instead of printing: C0 controls
 * (ESC starts colour, cursor, screen-clearing, title and OSC 8 link sequences; CR and LF forge
 * lines), DEL, C1 controls (0x9b is a one-byte CSI on some terminals) and the Unicode
 * bidirectional controls that reorder what is shown ("Trojan Source", CVE-2021-42574).
 */
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/**
 * Text that came from a site folder (a folder or file name, a site name or title, a field value,
 * a parser's message quoting one), made safe to print on the operator's terminal: every character
 * above is shown as an escape (`\x1b`, `\x0a`, `\u202e`) and everything else is left as it is,
 * so a tenant value can neither drive the terminal nor pass for another line of a report.
 */
export function terminalSafe(text: string): string {
  return text.replace(UNPRINTABLE, (c) => {
    const code = c.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}
