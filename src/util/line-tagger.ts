// Prefixes each complete line of a stream of text with a tag (`--tag-output`).

export class LineTagger {
  private partial = '';

  /** With `skipTagged`, lines that already carry a "[node " tag (written by an app thread) pass unchanged. */
  constructor(private readonly tag: string, private readonly skipTagged = false) {}

  push(text: string): string {
    const lines = (this.partial + text).split('\n');
    this.partial = lines.pop() ?? '';
    return lines.map((line) => `${this.tagFor(line)}${line}\n`).join('');
  }

  flush(): string {
    const rest = this.partial;
    this.partial = '';
    return rest === '' ? '' : `${this.tagFor(rest)}${rest}\n`;
  }

  private tagFor(line: string): string {
    return this.skipTagged && line.startsWith('[node ') ? '' : this.tag;
  }
}
