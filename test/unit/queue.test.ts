import { describe, expect, it } from "vitest";
import { ItemQueue, type Settle } from "../../src/internal/queue.js";

const noop: Settle = () => {};

function filled(count: number, arrival: (i: number) => number = () => 0): ItemQueue<number> {
  const queue = new ItemQueue<number>();
  for (let i = 0; i < count; i++) queue.push(i, noop, arrival(i));
  return queue;
}

describe("ItemQueue", () => {
  it("takes items oldest first, with their settle functions", () => {
    const queue = new ItemQueue<string>();
    const settles = ["a", "b", "c"].map((item) => {
      const settle: Settle = () => {};
      queue.push(item, settle, 0);
      return settle;
    });
    const first = queue.take(2);
    expect(first.items).toEqual(["a", "b"]);
    expect(first.settles).toEqual(settles.slice(0, 2));
    expect(queue.size).toBe(1);
    expect(queue.take(1).items).toEqual(["c"]);
    expect(queue.size).toBe(0);
  });

  it("numbers items in order across takes and resets", () => {
    const queue = filled(5);
    expect([queue.headSeq, queue.tailSeq]).toEqual([0, 5]);
    queue.take(2);
    expect([queue.headSeq, queue.tailSeq]).toEqual([2, 5]);
    queue.take(3);
    expect([queue.headSeq, queue.tailSeq]).toEqual([5, 5]);
    queue.push(5, noop, 0);
    expect([queue.headSeq, queue.tailSeq]).toEqual([5, 6]);
  });

  it("knows the arrival time of whichever item is oldest", () => {
    // three items per clock reading: 0,0,0,10,10,10,20,...
    const queue = filled(30, (i) => Math.floor(i / 3) * 10);
    expect(queue.headArrival()).toBe(0);
    queue.take(2);
    expect(queue.headArrival()).toBe(0);
    queue.take(1);
    expect(queue.headArrival()).toBe(10);
    queue.take(13);
    expect(queue.headArrival()).toBe(50);
    queue.take(14);
    queue.push(99, noop, 1234);
    expect(queue.headArrival()).toBe(1234);
  });

  it("compacts a long-lived queue and keeps order, numbering and arrivals", () => {
    const queue = new ItemQueue<number>();
    let next = 0;
    let expected = 0;
    // Keep about 3,000 items waiting while 50,000 pass through, 7 in, 5 out.
    for (let round = 0; round < 10_000; round++) {
      for (let i = 0; i < 7 && next < 50_000; i++, next++) queue.push(next, noop, next);
      const count = Math.min(5, queue.size);
      if (count === 0) break;
      const oldest = queue.headArrival();
      expect(oldest).toBe(expected);
      expect(queue.headSeq).toBe(expected);
      const { items } = queue.take(count);
      for (const item of items) expect(item).toBe(expected++);
    }
    while (queue.size > 0) {
      for (const item of queue.take(Math.min(1000, queue.size)).items)
        expect(item).toBe(expected++);
    }
    expect(expected).toBe(50_000);
    expect(queue.tailSeq).toBe(50_000);
  });

  it("drains everything", () => {
    const queue = filled(4);
    queue.take(1);
    expect(queue.drain()).toHaveLength(3);
    expect(queue.size).toBe(0);
    expect(queue.drain()).toEqual([]);
  });
});
