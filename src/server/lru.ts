/** A small least-recently-used map: at most `capacity` entries, the oldest dropped first. */
export class Lru<K, V> {
  private readonly entries = new Map<K, V>();

  constructor(private readonly capacity: number) {}

  /** The value for `key`, made by `create` on a miss; either way it becomes the most recent. */
  get(key: K, create: () => V): V {
    let value = this.entries.get(key);
    if (value === undefined) value = create();
    else this.entries.delete(key);
    this.entries.set(key, value);
    if (this.entries.size > this.capacity) {
      const oldest = this.entries.keys().next().value as K;
      this.entries.delete(oldest);
    }
    return value;
  }
}
