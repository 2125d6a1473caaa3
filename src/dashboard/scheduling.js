// Pacing: screens redraw at most once per animation frame, and reads at most once per interval.

/**
 * A function that asks for `draw` in the next animation frame: however many times it is
 * called before then, `draw` runs once.
 */
export function frameScheduler(draw) {
  let pending = false;
  return () => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      draw();
    });
  };
}

/**
 * Runs `load` when asked: never two at once, and starts at least `minIntervalMs` apart, or
 * twice as long as the last load took, so a slow server is asked half as often as it can
 * answer. Asks made while a load runs or waits fold into one more load, so a burst of
 * events costs one read. `load` handles its own errors.
 */
export function refresher(load, minIntervalMs) {
  let running = false;
  let again = false;
  let stopped = false;
  let timer = null;
  let lastStart = -Infinity;
  let spacing = minIntervalMs;

  const run = async () => {
    timer = null;
    if (stopped) return;
    running = true;
    lastStart = performance.now();
    try {
      await load();
    } finally {
      spacing = Math.max(minIntervalMs, 2 * (performance.now() - lastStart));
      running = false;
      if (again) {
        again = false;
        request();
      }
    }
  };
  const request = () => {
    if (stopped) return;
    if (running) {
      again = true;
      return;
    }
    if (timer !== null) return;
    timer = setTimeout(run, Math.max(0, lastStart + spacing - performance.now()));
  };
  return {
    request,
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
