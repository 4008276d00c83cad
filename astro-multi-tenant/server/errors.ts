/**
 * Typed errors: every failure the platform reports carries a stable code, the offending input and
 * (for content problems) the file and field, so operators can grep logs and site owners can fix
 * their folder without reading a stack trace.
 */
export type ErrorCode =
  | 'HOST_MISSING'
  | 'HOST_MALFORMED'
  | 'PATH_MALFORMED'
  | 'PATH_FORBIDDEN'
  | 'SITE_CONFIG_INVALID'
  | 'PAGE_INVALID'
  | 'CONFIG_INVALID';

export class PlatformError extends Error {
  readonly code: ErrorCode;
  readonly input: string | undefined;

  constructor(code: ErrorCode, message: string, input?: string) {
    super(message);
    this.name = 'PlatformError';
    this.code = code;
    this.input = input;
  }
}

/** One problem in a content file: which file, which field (dotted path) and why. */
export interface ContentIssue {
  file: string;
  field: string;
  reason: string;
}

export class ContentError extends Error {
  readonly code: 'SITE_CONFIG_INVALID' | 'PAGE_INVALID';
  readonly issues: ContentIssue[];

  constructor(code: 'SITE_CONFIG_INVALID' | 'PAGE_INVALID', issues: ContentIssue[]) {
    super(issues.map(formatIssue).join('\n'));
    this.name = 'ContentError';
    this.code = code;
    this.issues = issues;
  }
}

export function formatIssue(issue: ContentIssue): string {
  return issue.field ? `${issue.file}: ${issue.field}: ${issue.reason}` : `${issue.file}: ${issue.reason}`;
}
