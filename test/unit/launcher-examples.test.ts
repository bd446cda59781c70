// The example job files: the Kubernetes manifests are read as Kubernetes reads
// them (every document parsed, the fields an Indexed Job with a headless
// Service needs, cross-checked), then each pod's environment is given to
// dsm's detection; the Slurm batch script is checked by bash and its srun line.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { detectLauncher } from '../../src/cluster/launchers/index.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Manifest = Record<string, any>;

function manifests(path: string): Manifest[] {
  const documents = parseAllDocuments(readFileSync(path, 'utf8'));
  assert.ok(Array.isArray(documents), 'the file parses as YAML');
  for (const document of documents) assert.deepEqual(document.errors, [], `${path}: ${document.errors.join('; ')}`);
  return documents.map((document) => document.toJS() as Manifest);
}

function optionValue(command: string[], name: string): string | undefined {
  const index = command.indexOf(name);
  return index === -1 ? undefined : command[index + 1];
}

const dnsLabel = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

test('examples/k8s-indexed-job.yaml: an Indexed Job, its headless Service and Secret agree', () => {
  const all = manifests('examples/k8s-indexed-job.yaml');
  const byKind = new Map(all.map((manifest) => [manifest.kind as string, manifest]));
  assert.deepEqual([...byKind.keys()].sort(), ['Job', 'Secret', 'Service']);
  const job = byKind.get('Job')!;
  const service = byKind.get('Service')!;
  const secret = byKind.get('Secret')!;
  assert.equal(job.apiVersion, 'batch/v1');
  assert.equal(service.apiVersion, 'v1');
  assert.equal(secret.apiVersion, 'v1');

  // Indexed Job (kubernetes.io/docs/concepts/workloads/controllers/job/#completion-mode).
  const jobName: string = job.metadata.name;
  const size: number = job.spec.completions;
  assert.equal(job.spec.completionMode, 'Indexed');
  assert.ok(Number.isInteger(size) && size >= 2, 'completions is the cluster size');
  assert.equal(job.spec.parallelism, size, 'every pod runs at once: the cluster starts when all joined');
  assert.equal(job.spec.backoffLimit, 0, 'a replaced pod cannot rejoin a started cluster');
  // Pod hostnames are <job>-<index>: a DNS label of at most 63 characters for every index.
  assert.match(jobName, dnsLabel);
  assert.ok(`${jobName}-${size - 1}`.length <= 63);
  const podSpec = job.spec.template.spec;
  assert.equal(podSpec.restartPolicy, 'Never');

  // Headless Service selecting the Job's pods, named by the pods' subdomain.
  assert.equal(service.spec.clusterIP, 'None');
  assert.equal(service.spec.publishNotReadyAddresses, true);
  assert.equal(podSpec.subdomain, service.metadata.name, 'the pods\' subdomain is the headless Service');
  assert.equal(service.spec.selector['job-name'] ?? service.spec.selector['batch.kubernetes.io/job-name'], jobName);

  // The container: dsm run under the kubernetes launcher, the secret from the Secret, never the command line.
  assert.equal(podSpec.containers.length, 1);
  const container = podSpec.containers[0];
  const command: string[] = [...(container.command ?? []), ...(container.args ?? [])];
  assert.deepEqual(command.slice(0, 3), ['npx', 'dsm', 'run']);
  assert.equal(optionValue(command, '--launcher'), 'kubernetes');
  assert.equal(optionValue(command, '--expect'), String(size), '--expect equals completions');
  assert.equal(command.includes('--secret'), false);
  const env = new Map<string, Manifest>(container.env.map((entry: Manifest) => [entry.name, entry]));
  assert.equal(env.get('DSM_KUBERNETES_SERVICE')?.value, service.metadata.name);
  const secretRef = env.get('DSM_SECRET')?.valueFrom?.secretKeyRef;
  assert.equal(secretRef?.name, secret.metadata.name);
  assert.ok(secretRef.key in (secret.stringData ?? secret.data ?? {}), 'the key exists in the Secret');

  // Each pod's environment, as the Job controller and the manifest give it, detected by dsm.
  const containerPort: number = container.ports.find((port: Manifest) => port.name === 'dsm').containerPort;
  assert.equal(service.spec.ports[0].port, containerPort);
  for (let index = 0; index < size; index += 1) {
    const podEnv = {
      JOB_COMPLETION_INDEX: String(index), HOSTNAME: `${jobName}-${index}`,
      DSM_KUBERNETES_SERVICE: env.get('DSM_KUBERNETES_SERVICE')!.value, DSM_SECRET: 'from-the-secret',
    };
    const leader = optionValue(command, '--leader');
    const plan = detectLauncher(podEnv, {
      launcher: optionValue(command, '--launcher'), expect: Number(optionValue(command, '--expect')),
      ...(leader === undefined ? {} : { leader }), hostname: `${jobName}-${index}`, homeDirectory: '/root', tmpDirectory: '/tmp',
    })!;
    assert.equal(plan.rank, index);
    assert.equal(plan.size, size);
    assert.deepEqual(plan.leader, { kind: 'address', host: `${jobName}-0.${service.metadata.name}`, port: containerPort });
  }
});

test('examples/slurm.sbatch: bash accepts it; its srun line runs dsm without a secret on the command line', () => {
  const checked = spawnSync('bash', ['-n', 'examples/slurm.sbatch'], { encoding: 'utf8' });
  assert.equal(checked.status, 0, checked.stderr);
  const text = readFileSync('examples/slurm.sbatch', 'utf8');
  assert.match(text, /^#!\/bin\/bash\n/);
  assert.match(text, /^#SBATCH --nodes=\d+$/m);
  const srun = text.split('\n').filter((line) => /^srun /.test(line));
  assert.equal(srun.length, 1);
  assert.match(srun[0]!, /^srun npx dsm run \S+/);
  assert.doesNotMatch(srun[0]!, /--secret\b/);
});
