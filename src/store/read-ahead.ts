/**
 * Pages one after another, each next page requested before the current one is handed
 * out, so the database reads while the caller works. `next(page)` starts the read of the
 * page after `page`, or returns null when `page` was the last.
 *
 * @example
 * for await (const page of readAhead(() => read(1), (page) => (page.full ? read(page.end) : null))) fold(page);
 */
export async function* readAhead<P>(
  first: () => Promise<P>,
  next: (page: P) => Promise<P> | null,
): AsyncGenerator<P> {
  let pending: Promise<P> | null = handled(first());
  while (pending) {
    const page: P = await pending;
    const following = next(page);
    pending = following && handled(following);
    yield page;
  }
}

/**
 * A read in flight while the caller works (or after it stopped) would otherwise be an
 * unhandled rejection, which ends a Node process; awaiting it still throws.
 */
function handled<P>(promise: Promise<P>): Promise<P> {
  promise.catch(() => undefined);
  return promise;
}
