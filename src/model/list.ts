// Removing elements of a world list in place. Array.prototype.splice(i, 1) also builds the array of
// the removed elements, and filter() a new list: allocations on every unmap, invalidation, UPDATE and
// MISS read of the simulation's hot path, for lists a handful of entries long.

/** Removes a[i], keeping the order of the rest. */
export function removeAt<T>(a: T[], i: number): void {
  const n = a.length - 1;
  for (let k = i; k < n; k++) a[k] = a[k + 1]!;
  a.pop();
}

/** Inserts x at a[i] (0 <= i <= a.length), moving the rest up. */
export function insertAt<T>(a: T[], i: number, x: T): void {
  a.push(x);
  for (let k = a.length - 1; k > i; k--) a[k] = a[k - 1]!;
  a[i] = x;
}
