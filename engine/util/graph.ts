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
