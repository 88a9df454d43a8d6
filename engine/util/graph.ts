/**
 * Graphs of sources given as adjacency lists (each source's neighbours, without itself): greedy
 * colourings (which sources may be perturbed together in one finite-difference evaluation) and
 * connected components (independent blocks of a sparse Hessian).
 */

/**
 * Greedy colouring, largest degree first. distance 1: neighbours get different colours (sources
 * perturbed together never share a pixel). distance 2: neither neighbours nor sources with a
 * common neighbour share a colour, so a gradient component sees at most one perturbed source.
 */
export function greedyColouring(adj: number[][], distance: 1 | 2): { colour: Int32Array; count: number } {
  const n = adj.length;
  const colour = new Int32Array(n).fill(-1);
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => adj[b].length - adj[a].length || a - b);
  const mark = new Int32Array(n + 1).fill(-1);
  let count = 0;
  for (const v of order) {
    for (const u of adj[v]) {
      if (colour[u] >= 0) mark[colour[u]] = v;
      if (distance === 2) for (const w of adj[u]) if (w !== v && colour[w] >= 0) mark[colour[w]] = v;
    }
    let c = 0;
    while (mark[c] === v) c++;
    colour[v] = c;
    count = Math.max(count, c + 1);
  }
  return { colour, count };
}

/** Distance-2 colouring (see greedyColouring): the Hessian columns of one colour do not mix. */
export function distance2Colouring(adj: number[][]): { colour: Int32Array; count: number } {
  return greedyColouring(adj, 2);
}

/**
 * Star colouring: neighbours get different colours and no path on four vertices uses only two
 * colours (every two-coloured subgraph is a union of stars). That is what recovering a SYMMETRIC
 * sparse matrix from coloured column differences needs (Coleman & Moré 1984, "Estimation of
 * sparse Hessian matrices and graph coloring problems"; Gebremedhin, Manne & Pothen 2005, SIAM
 * Review 47, 629): for every edge (s, t), s is the only vertex of its colour next to t or t the
 * only one of its colour next to s, so H[s, t] is read off one of the two columns — whereas a
 * distance-2 colouring reads it off both, with more colours.
 *
 * Greedy, and greedy colourings depend on the vertex order: this tries largest-degree-first,
 * smallest-last, the natural order and STAR_RANDOM_ORDERS seeded shuffles, and keeps the one with
 * the fewest colours (deterministic; each pass is O(Σ deg³), milliseconds for a sub-tile). On the
 * project's scenes that is 4–6 colours for `ci` sub-tiles and 7 for the realistic `subtile` one,
 * where largest-first alone gave up to 8 and 9 and a distance-2 colouring 6–8 and 13
 * (docs/inference.md "Computing H without a dense matrix").
 */
export function starColouring(adj: number[][]): { colour: Int32Array; count: number } {
  const n = adj.length;
  const orders: number[][] = [largestFirst(adj), smallestLast(adj), Array.from({ length: n }, (_, i) => i)];
  let seed = 0x2545f491;
  const rnd = () => {
    // xorshift32: a fixed sequence, so the colouring is the same on every run
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) / 4294967296;
  };
  for (let t = 0; t < STAR_RANDOM_ORDERS; t++) {
    const o = Array.from({ length: n }, (_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(rnd() * (i + 1));
      [o[i], o[j]] = [o[j], o[i]];
    }
    orders.push(o);
  }
  let best: { colour: Int32Array; count: number } | null = null;
  for (const o of orders) {
    const r = starColouringInOrder(adj, o);
    if (!best || r.count < best.count) best = r;
  }
  return best!;
}

/** Seeded random vertex orders tried by starColouring besides the three heuristic ones. */
export const STAR_RANDOM_ORDERS = 8;

function largestFirst(adj: number[][]): number[] {
  return Array.from({ length: adj.length }, (_, i) => i).sort((a, b) => adj[b].length - adj[a].length || a - b);
}

/** Smallest-last order (Matula & Beck 1983): repeatedly remove a vertex of least remaining degree; colour in reverse. */
function smallestLast(adj: number[][]): number[] {
  const n = adj.length;
  const deg = adj.map((a) => a.length);
  const maxDeg = Math.max(0, ...deg);
  const buckets: Set<number>[] = Array.from({ length: maxDeg + 1 }, () => new Set<number>());
  deg.forEach((d, v) => buckets[d].add(v));
  const removed = new Uint8Array(n);
  const out: number[] = [];
  let low = 0;
  for (let k = 0; k < n; k++) {
    low = Math.max(0, low - 1);
    while (!buckets[low].size) low++;
    const v = buckets[low].values().next().value as number;
    buckets[low].delete(v);
    removed[v] = 1;
    out.push(v);
    for (const u of adj[v])
      if (!removed[u]) {
        buckets[deg[u]].delete(u);
        deg[u]--;
        buckets[deg[u]].add(u);
      }
  }
  return out.reverse();
}

/**
 * Greedy star colouring in the given vertex order. A colour c is forbidden for v when a neighbour
 * holds it, or when giving it to v closes a two-coloured path v–w–x–y (x of colour c next to w,
 * y ≠ w next to x sharing w's colour) or u–v–w–x (u ≠ w next to v sharing w's colour, x ≠ v next
 * to w of colour c).
 */
function starColouringInOrder(adj: number[][], order: readonly number[]): { colour: Int32Array; count: number } {
  const n = adj.length;
  const colour = new Int32Array(n).fill(-1);
  const forbidden = new Int32Array(n + 1).fill(-1);
  // per colour, how many of v's coloured neighbours hold it (reset after each vertex)
  const countAt = new Int32Array(n + 1);
  let count = 0;
  for (const v of order) {
    for (const w of adj[v])
      if (colour[w] >= 0) {
        forbidden[colour[w]] = v;
        countAt[colour[w]]++;
      }
    for (const w of adj[v]) {
      const a = colour[w];
      if (a < 0) continue;
      for (const x of adj[w]) {
        const c = colour[x];
        if (x === v || c < 0) continue;
        // u–v–w–x: another neighbour of v has w's colour
        if (countAt[a] >= 2) {
          forbidden[c] = v;
          continue;
        }
        // v–w–x–y: x has a neighbour other than w with w's colour
        for (const y of adj[x])
          if (y !== w && colour[y] === a) {
            forbidden[c] = v;
            break;
          }
      }
    }
    for (const w of adj[v]) if (colour[w] >= 0) countAt[colour[w]] = 0;
    let c = 0;
    while (forbidden[c] === v) c++;
    colour[v] = c;
    count = Math.max(count, c + 1);
  }
  return { colour, count };
}

/** Connected components of the overlap graph (each sorted). */
export function components(adj: number[][]): number[][] {
  const n = adj.length;
  const seen = new Uint8Array(n);
  const out: number[][] = [];
  for (let s = 0; s < n; s++) {
    if (seen[s]) continue;
    const comp: number[] = [];
    const stack = [s];
    seen[s] = 1;
    while (stack.length) {
      const v = stack.pop()!;
      comp.push(v);
      for (const u of adj[v])
        if (!seen[u]) {
          seen[u] = 1;
          stack.push(u);
        }
    }
    out.push(comp.sort((a, b) => a - b));
  }
  return out;
}

/** Distance-1 colouring (see greedyColouring): sources of one colour never share a pixel. */
export function distance1Colouring(adj: number[][]): { colour: Int32Array; count: number } {
  return greedyColouring(adj, 1);
}
