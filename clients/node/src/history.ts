// The memory of entries a subscription delivered (PROTOCOL.md section 5): what it needs to
// tell, after a failover that lost acknowledged writes, where the log parted from what it
// delivered. A seq alone cannot: the new primary hands out the same seqs to other messages.

/** Delivered is a log entry a subscription delivered (all of it from first, or its tail). */
export interface Delivered {
  first: number;
  last: number;
  id: string;
}

/** History remembers the entries delivered most recently, up to max (and at most twice that while it trims lazily). */
export class History {
  ents: Delivered[] = [];
  constructor(readonly max: number) {}

  /** add records an entry delivered after every entry already recorded. */
  add(first: number, last: number, id: string): void {
    if (id === '') return; // a version 1 entry: nothing to compare later
    const n = this.ents.length;
    if (n > 0 && this.ents[n - 1].first === first) {
      this.ents[n - 1] = { first, last, id }; // the rest of an entry delivered in parts
      return;
    }
    if (n >= 2 * this.max) this.ents = this.ents.slice(n - this.max);
    this.ents.push({ first, last, id });
  }

  clear(): void {
    this.ents = [];
  }

  private search(pred: (d: Delivered) => boolean): number {
    let lo = 0;
    let hi = this.ents.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (pred(this.ents[mid])) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  /**
   * lookup returns the recorded entry starting at first; covered says whether first falls
   * within the recorded range at all, so that a missing entry there means another batching.
   */
  lookup(first: number): { d?: Delivered; covered: boolean } {
    const i = this.search((d) => d.first >= first);
    if (i < this.ents.length && this.ents[i].first === first) return { d: this.ents[i], covered: true };
    const n = this.ents.length;
    return { covered: n > 0 && first >= this.ents[0].first && first <= this.ents[n - 1].last };
  }

  /** cut forgets the entries from seq d on and returns the id of the entry ending at d-1, or ''. */
  cut(d: number): string {
    const i = this.search((e) => e.last >= d);
    this.ents = this.ents.slice(0, i);
    if (i > 0 && this.ents[i - 1].last === d - 1) return this.ents[i - 1].id;
    return '';
  }
}
