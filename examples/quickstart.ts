import { AsyncBatcher } from "async-batcher";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const range = (n: number) => Array.from({ length: n }, (_, i) => i);

class MyBatchProcessor extends AsyncBatcher<number, number> {
  async processBatch(batch: number[]): Promise<number[]> {
    await sleep(1000); // simulate processing delay
    return batch.map((x) => x * 2);
  }
}

const batcher = new MyBatchProcessor({ maxBatchSize: 5, maxQueueTime: 2000, concurrency: 2 });
const results = await Promise.all(range(10).map((i) => batcher.process(i)));
console.log(results); // [0, 2, 4, 6, 8, 10, 12, 14, 16, 18]
await batcher.stop();
