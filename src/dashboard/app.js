// The dashboard's pages, by address: `/` the jobs, `/jobs/:id` one job, `/projects/:name` one
// project. Links between them change the page without a reload.
import { jobPage } from './job-page.js';
import { overviewPage } from './overview-page.js';
import { projectPage } from './project-page.js';

const routes = [
  { pattern: /^\/$/, page: overviewPage },
  { pattern: /^\/jobs\/([^/]+)$/, page: jobPage },
  { pattern: /^\/projects\/([^/]+)$/, page: projectPage },
];

const root = document.getElementById('view');
let leaving = null;

function pageFor(pathname) {
  for (const { pattern, page } of routes) {
    const match = pattern.exec(pathname);
    if (!match) continue;
    try {
      return { page, params: match.slice(1).map(decodeURIComponent) };
    } catch {
      // A malformed escape in the address: show the jobs instead of nothing.
      return null;
    }
  }
  return null;
}

/** Stops the page shown (its streams and timers) and shows the one the address names. */
function show({ focus = false } = {}) {
  leaving?.abort();
  leaving = new AbortController();
  const found = pageFor(location.pathname) ?? pageFor('/');
  // A fresh element per page: each renders into its own, from nothing.
  const container = document.createElement('div');
  root.replaceChildren(container);
  found.page(container, { signal: leaving.signal, params: found.params });
  if (focus) root.focus({ preventScroll: true });
}

document.addEventListener('click', (event) => {
  const link = event.target.closest?.('a[href]');
  if (!link || link.target || link.hasAttribute('download')) return;
  if (event.defaultPrevented || event.button !== 0) return;
  if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  const url = new URL(link.href);
  if (url.origin !== location.origin || !pageFor(url.pathname)) return;
  // A link within this page (the skip link, an anchor) is the browser's to follow.
  if (url.pathname === location.pathname && url.search === location.search && url.hash) return;
  event.preventDefault();
  if (url.href !== location.href) history.pushState(null, '', url);
  show({ focus: true });
  scrollTo(0, 0);
});
addEventListener('popstate', () => show());

show();
