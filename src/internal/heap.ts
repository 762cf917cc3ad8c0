/** A node of an `IndexedHeap`: the heap keeps its position there, `-1` when it is not in one. */
export interface HeapNode {
  heapIndex: number;
}

/**
 * A binary min-heap that knows where each node is, so a node can be removed, or moved after its
 * key changed, in O(log n). `before(a, b)` is true when `a` must come out before `b`.
 */
export class IndexedHeap<N extends HeapNode> {
  readonly #nodes: N[] = [];
  readonly #before: (a: N, b: N) => boolean;

  constructor(before: (a: N, b: N) => boolean) {
    this.#before = before;
  }

  get size(): number {
    return this.#nodes.length;
  }

  peek(): N | undefined {
    return this.#nodes[0];
  }

  /** The nodes in no particular order; do not change the heap while iterating. */
  values(): readonly N[] {
    return this.#nodes;
  }

  push(node: N): void {
    node.heapIndex = this.#nodes.length;
    this.#nodes.push(node);
    this.#up(node.heapIndex);
  }

  remove(node: N): void {
    const index = node.heapIndex;
    if (index < 0) return;
    const nodes = this.#nodes;
    const last = nodes.pop() as N;
    node.heapIndex = -1;
    if (last === node) return;
    nodes[index] = last;
    last.heapIndex = index;
    this.update(last);
  }

  /** Restores the order after `node`'s key changed either way. */
  update(node: N): void {
    const index = node.heapIndex;
    if (index < 0) return;
    if (index > 0 && this.#before(node, this.#nodes[(index - 1) >> 1] as N)) this.#up(index);
    else this.#down(index);
  }

  /** Empties the heap and returns its nodes, in no particular order. */
  clear(): N[] {
    const nodes = this.#nodes.splice(0);
    for (const node of nodes) node.heapIndex = -1;
    return nodes;
  }

  #up(index: number): void {
    const nodes = this.#nodes;
    const node = nodes[index] as N;
    while (index > 0) {
      const parentIndex = (index - 1) >> 1;
      const parent = nodes[parentIndex] as N;
      if (!this.#before(node, parent)) break;
      nodes[index] = parent;
      parent.heapIndex = index;
      index = parentIndex;
    }
    nodes[index] = node;
    node.heapIndex = index;
  }

  #down(index: number): void {
    const nodes = this.#nodes;
    const length = nodes.length;
    const node = nodes[index] as N;
    for (;;) {
      const left = 2 * index + 1;
      if (left >= length) break;
      const right = left + 1;
      let child = left;
      if (right < length && this.#before(nodes[right] as N, nodes[left] as N)) child = right;
      const smaller = nodes[child] as N;
      if (!this.#before(smaller, node)) break;
      nodes[index] = smaller;
      smaller.heapIndex = index;
      index = child;
    }
    nodes[index] = node;
    node.heapIndex = index;
  }
}
