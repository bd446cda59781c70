// npm run fuzz -- --inputs N [--seed S] [--only I]: runs the transport fuzzer and
// prints one JSON report; exits 1 on any failure (each printed with its seed and input).
import * as fuzz from './transport-fuzz.js';
const { runFuzz } = fuzz;

const args = process.argv.slice(2);
const option = (name: string): string | undefined => {
  const index = args.indexOf(name);
  return index === -1 ? undefined : args[index + 1];
};
const inputs = Number(option('--inputs') ?? 100_000);
const seed = Number(option('--seed') ?? Math.floor(Math.random() * 2 ** 31));
const only = option('--only');
if (!Number.isSafeInteger(inputs) || inputs < 1 || !Number.isSafeInteger(seed)) {
  process.stderr.write('usage: npm run fuzz -- --inputs N [--seed S] [--only I]\n');
  process.exit(2);
}
process.stderr.write(`dsm fuzz: seed ${seed}, ${only === undefined ? `${inputs} inputs` : `input ${only}`}\n`);
// An exception nothing caught, anywhere (a stray timer, an emitter): a failure with the seed.
process.on('uncaughtException', (error) => {
  const at = fuzz.currentInput;
  process.stderr.write(`FAIL seed ${seed} input ${at?.input} (${at?.target}): uncaught ${String(error.stack ?? error)}\n  replay: npm run fuzz -- --seed ${seed} --only ${at?.input}\n`);
  process.exit(1);
});
const report = await runFuzz({ inputs, seed, ...(only === undefined ? {} : { only: Number(only) }), log: (line) => process.stderr.write(`${line}\n`) });
process.stdout.write(`${JSON.stringify(report)}\n`);
process.exit(report.failures.length === 0 ? 0 : 1);
