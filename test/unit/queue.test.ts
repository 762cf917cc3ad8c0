import { describe, expect, it } from "vitest";
import { IndexedHeap } from "../../src/internal/heap.js";
import { Lane } from "../../src/internal/lane.js";
import { ItemQueue, type Settle, type Taken } from "../../src/internal/queue.js";
import { RateWindow } from "../../src/internal/rate.js";

const noop: Settle = () => {};

function taken<T>(): Taken<T> {
  return {
    items: [],
    entries: [],
    weight: 0,
    cohorts: undefined,
    keys: undefined,
    slots: undefined,
    seen: undefined,
    tries: undefined,
    weights: undefined,
  };
}

function take<T>(queue: ItemQueue<T>, count: number, maxWeight = Number.POSITIVE_INFINITY): T[] {
  const out = taken<T>();
  queue.take(count, maxWeight, out);
  return out.items;
}

/** `count` items 0..count-1 with sequence numbers 0..count-1. */
function filled(count: number, arrival: (i: number) => number = () => 0): ItemQueue<number> {
  const queue = new ItemQueue<number>(0, false);
  for (let i = 0; i < count; i++) queue.push(i, noop, arrival(i), i, 0, undefined);
  return queue;
}

describe("ItemQueue", () => {
  it("takes items oldest first, with their entries", () => {
    const queue = new ItemQueue<string>(0, false);
    const settles = ["a", "b", "c"].map((item, i) => {
      const settle: Settle = () => {};
      queue.push(item, settle, 0, i, 0, undefined);
      return settle;
    });
    const first = taken<string>();
    queue.take(2, Number.POSITIVE_INFINITY, first);
    expect(first.items).toEqual(["a", "b"]);
    expect(first.entries).toEqual(settles.slice(0, 2));
    expect(queue.size).toBe(1);
    expect(take(queue, 1)).toEqual(["c"]);
    expect(queue.size).toBe(0);
  });

  it("keeps each item's sequence number, contiguous or not", () => {
    const queue = new ItemQueue<number>(0, false);
    // Sequence numbers with gaps: another queue took 3, 4 and 7.
    for (const seq of [0, 1, 2, 5, 6, 8]) queue.push(seq, noop, 0, seq, 0, undefined);
    const seen: number[] = [];
    while (queue.size > 0) {
      seen.push(queue.headSeq());
      take(queue, 1);
    }
    expect(seen).toEqual([0, 1, 2, 5, 6, 8]);
  });

  it("keeps per-item sequence numbers for interleaved queues, across takes that empty it", () => {
    const queue = new ItemQueue<number>(0, false, true);
    queue.push(0, noop, 0, 0, 0, undefined);
    queue.push(1, noop, 0, 3, 0, undefined); // same tick, not contiguous: no new run needed
    expect(take(queue, 10)).toEqual([0, 1]); // handed over whole
    queue.push(2, noop, 0, 7, 0, undefined);
    queue.push(3, noop, 0, 9, 0, undefined);
    expect(queue.headSeq()).toBe(7);
    take(queue, 1);
    expect(queue.headSeq()).toBe(9);
  });

  it("knows the arrival time of whichever item is oldest", () => {
    // three items per clock reading: 0,0,0,10,10,10,20,...
    const queue = filled(30, (i) => Math.floor(i / 3) * 10);
    expect(queue.headArrival()).toBe(0);
    take(queue, 2);
    expect(queue.headArrival()).toBe(0);
    take(queue, 1);
    expect(queue.headArrival()).toBe(10);
    take(queue, 13);
    expect(queue.headArrival()).toBe(50);
    take(queue, 14);
    queue.push(99, noop, 1234, 30, 0, undefined);
    expect(queue.headArrival()).toBe(1234);
  });

  it("removes items from anywhere, and the head never rests on a hole", () => {
    const queue = filled(6, (i) => i * 10);
    expect(queue.remove(2)).toBe(noop);
    expect(queue.remove(2)).toBeUndefined(); // already gone
    expect(queue.size).toBe(5);
    queue.remove(0);
    queue.remove(1);
    // 0, 1 and 2 are gone: the head is item 3, with its own arrival and sequence number.
    expect([queue.headPos, queue.headSeq(), queue.headArrival()]).toEqual([3, 3, 30]);
    queue.remove(4);
    expect(take(queue, 10)).toEqual([3, 5]);
    expect(queue.size).toBe(0);
    expect(queue.remove(5)).toBeUndefined(); // taken
  });

  it("stops before the item that would go over the weight, unless the batch is empty", () => {
    const queue = new ItemQueue<string>(0, true);
    const weights = [4, 3, 5, 9, 1];
    for (const [i, w] of weights.entries()) queue.push(`w${w}`, noop, 0, i, w, undefined);
    expect(queue.weight).toBe(22);
    const out = taken<string>();
    queue.take(10, 10, out);
    expect(out.items).toEqual(["w4", "w3"]);
    expect(out.weight).toBe(7);
    expect(queue.weight).toBe(15);
    // A batch already holding weight 7 cannot take w5 within 10.
    queue.take(10, 10, out);
    expect(out.items).toEqual(["w4", "w3"]);
    expect(take(queue, 10, 10)).toEqual(["w5"]);
    queue.remove(3); // w9
    expect(queue.weight).toBe(1);
    expect(take(queue, 10, 10)).toEqual(["w1"]);
  });

  it("compacts a long-lived queue and keeps order, numbering and arrivals", () => {
    const queue = new ItemQueue<number>(0, false);
    let next = 0;
    let expected = 0;
    // Keep about 3,000 items waiting while 50,000 pass through, 7 in, 5 out; every 97th item
    // leaves early.
    const removed = new Set<number>();
    for (let round = 0; round < 10_000; round++) {
      for (let i = 0; i < 7 && next < 50_000; i++, next++) {
        queue.push(next, noop, next, next, 0, undefined);
        if (next % 97 === 50) {
          queue.remove(next);
          removed.add(next);
        }
      }
      const count = Math.min(5, queue.size);
      if (count === 0) break;
      while (removed.has(expected)) expected++;
      expect(queue.headArrival()).toBe(expected);
      expect(queue.headSeq()).toBe(expected);
      for (const item of take(queue, count)) {
        while (removed.has(expected)) expected++;
        expect(item).toBe(expected++);
      }
    }
    while (queue.size > 0) {
      for (const item of take(queue, 1000)) {
        while (removed.has(expected)) expected++;
        expect(item).toBe(expected++);
      }
    }
    expect(expected).toBe(50_000);
    expect(queue.tailPos).toBe(50_000);
  });

  it("drains everything left, skipping holes", () => {
    const queue = filled(5);
    take(queue, 1);
    queue.remove(2);
    expect(queue.drain()).toHaveLength(3);
    expect(queue.size).toBe(0);
    expect(queue.drain()).toEqual([]);
  });
});

describe("Lane", () => {
  it("takes higher priorities first, and its clock runs from the oldest item", () => {
    const lane = new Lane<string>(undefined, false);
    let seq = 0;
    const push = (item: string, priority: number, at: number) => {
      lane.queueFor(priority).push(item, noop, at, seq++, 0, undefined);
      lane.size++;
    };
    push("low-a", -1, 0);
    push("mid-a", 0, 1);
    push("high-a", 5, 2);
    push("low-b", -1, 3);
    push("high-b", 5, 4);
    lane.refresh();
    expect([lane.oldestSeq, lane.oldestArrival]).toEqual([0, 0]);
    const first = lane.take(3, Number.POSITIVE_INFINITY);
    expect(first.items).toEqual(["high-a", "high-b", "mid-a"]);
    expect(first.minSeq).toBe(1);
    lane.refresh();
    expect(lane.queues.map((q) => q.priority)).toEqual([0, -1]); // emptied priorities go
    expect([lane.size, lane.oldestSeq]).toEqual([2, 0]);
    expect(lane.take(5, Number.POSITIVE_INFINITY).items).toEqual(["low-a", "low-b"]);
  });

  it("does not let a light low-priority item pass a heavy high-priority one", () => {
    const lane = new Lane<string>("k", true);
    lane.queueFor(1).push("heavy", noop, 0, 0, 8, undefined);
    lane.queueFor(0).push("light", noop, 0, 1, 1, undefined);
    lane.size = 2;
    const out = lane.take(10, 5 + 4);
    expect(out.items).toEqual(["heavy", "light"]);
    lane.queueFor(1).push("heavy2", noop, 0, 2, 8, undefined);
    lane.queueFor(0).push("light2", noop, 0, 3, 1, undefined);
    lane.size = 2;
    expect(lane.take(10, 8.5).items).toEqual(["heavy2"]);
  });
});

describe("IndexedHeap", () => {
  it("pops in order and supports removal and updates", () => {
    type Node = { key: number; heapIndex: number };
    const heap = new IndexedHeap<Node>((a, b) => a.key < b.key);
    const nodes = [5, 3, 9, 1, 7, 2, 8].map((key) => ({ key, heapIndex: -1 }));
    for (const node of nodes) heap.push(node);
    heap.remove(nodes[3] as Node); // 1
    (nodes[2] as Node).key = 0; // 9 -> 0
    heap.update(nodes[2] as Node);
    const out: number[] = [];
    while (heap.size > 0) {
      const top = heap.peek() as Node;
      out.push(top.key);
      heap.remove(top);
    }
    expect(out).toEqual([0, 2, 3, 5, 7, 8]);
    expect(nodes.every((n) => n.heapIndex === -1)).toBe(true);
  });
});

describe("RateWindow", () => {
  it("counts batches and items over a rolling window", () => {
    const window = new RateWindow({ batches: 2, items: 10, interval: 100 });
    expect(window.allowance(0)).toBe(10);
    window.record(0, 6);
    expect(window.allowance(10)).toBe(4);
    window.record(10, 4);
    expect(window.allowance(20)).toBe(0);
    // Both quotas are spent: the first batch leaves at 100, freeing 6 items and a batch.
    expect(window.nextAt()).toBe(100);
    expect(window.allowance(99)).toBe(0);
    expect(window.allowance(100)).toBe(6);
    window.record(100, 1);
    expect(window.allowance(105)).toBe(0);
    expect(window.nextAt()).toBe(110);
  });
});
