// What a candidate manifest may claim, judged against the model it would replace, before a byte is
// downloaded. A manifest carries its own match thresholds and the self-test used to judge the candidate
// by them, so a threshold of -1 passed every check and made every face a match. Here:
//   - an embedder's thresholds stay within MAX_THRESHOLD_SHIFT of the running model's (the range the
//     family was calibrated in), with the stricter FAR no lower than the looser one;
//   - an unsigned manifest (models.update.allowUnsigned) may not lower them at all;
//   - a version older than the running one is refused unless the manifest is signed and says
//     `"rollback": true` (the same version with other bytes counts as older: it is not an upgrade).
import { farCurve, thresholdForTargetFar } from '../matching/threshold.ts';
import type { ModelManifest } from '../models/manifest.ts';

/** How far (cosine) a new embedder's thresholds may move from the running model's. */
export const MAX_THRESHOLD_SHIFT = 0.05;

const FARS = ['0.01', '0.001'] as const;

/** Why `candidate` may not replace `running`, one sentence per problem; empty when it may. */
export function manifestPolicyProblems(
  candidate: ModelManifest,
  running: ModelManifest,
  signed: boolean,
): string[] {
  return [...thresholdProblems(candidate, running, signed), ...versionProblems(candidate, running, signed)];
}

function thresholdProblems(candidate: ModelManifest, running: ModelManifest, signed: boolean): string[] {
  const theirs = candidate.thresholds?.far;
  const ours = running.thresholds?.far;
  if (candidate.task !== 'face-embedding' || !theirs || !ours) return [];
  const problems: string[] = [];
  for (const far of FARS) {
    const t = theirs[far];
    const low = Math.max(0, ours[far] - MAX_THRESHOLD_SHIFT);
    const high = Math.min(1, ours[far] + MAX_THRESHOLD_SHIFT);
    if (!(t >= low && t <= high)) {
      problems.push(
        `its FAR ${far} threshold ${t} is outside ${low.toFixed(4)}..${high.toFixed(4)}, the calibrated range of ${running.name} (running ${running.version}: ${ours[far]})`,
      );
    } else if (!signed && t < ours[far]) {
      problems.push(
        `its FAR ${far} threshold ${t} is below the running model's ${ours[far]}, which only a signed manifest may do`,
      );
    }
  }
  problems.push(...curveProblems(candidate, running, signed));
  if (theirs['0.001'] < theirs['0.01'])
    problems.push(
      `its FAR 0.001 threshold ${theirs['0.001']} is below its FAR 0.01 threshold ${theirs['0.01']} (a stricter FAR needs a higher threshold)`,
    );
  return problems;
}

/**
 * The candidate's FAR curve (any target FAR may use it) under the same bounds as its two FAR points,
 * wherever the running model's curve measured that FAR; beyond it there is nothing to compare with.
 */
function curveProblems(candidate: ModelManifest, running: ModelManifest, signed: boolean): string[] {
  if (!candidate.thresholds?.curve || !running.thresholds) return [];
  const ours = farCurve(running.thresholds);
  const problems: string[] = [];
  for (const [far, t] of candidate.thresholds.curve) {
    if (far > ours[0][0] || far < ours[ours.length - 1][0]) continue;
    const reference = thresholdForTargetFar(running, far);
    if (Math.abs(t - reference) > MAX_THRESHOLD_SHIFT)
      problems.push(
        `its FAR ${far} threshold ${t} is more than ${MAX_THRESHOLD_SHIFT} from the running ${running.name}'s ${reference.toFixed(6)}`,
      );
    else if (!signed && t < reference)
      problems.push(
        `its FAR ${far} threshold ${t} is below the running model's ${reference.toFixed(6)}, which only a signed manifest may do`,
      );
  }
  return problems;
}

function versionProblems(candidate: ModelManifest, running: ModelManifest, signed: boolean): string[] {
  const order = compareVersions(candidate.version, running.version);
  // The running version's own bytes again is a reinstall, not a downgrade.
  if (order > 0 || (order === 0 && candidate.sha256 === running.sha256)) return [];
  if (candidate.rollback === true && signed) return [];
  const what =
    order === 0
      ? `is the running version ${running.version} with other bytes`
      : `is older than the running ${running.version}`;
  return [
    `version ${candidate.version} ${what}: a downgrade needs a signed manifest with "rollback": true (or model/rollback)`,
  ];
}

/** Dotted versions compared part by part, numerically where both parts are numbers ("1.10.0" > "1.9.2"). */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(/[.+-]/);
  const pb = b.split(/[.+-]/);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i] ?? '';
    const y = pb[i] ?? '';
    if (x === y) continue;
    const numeric = /^\d+$/.test(x) && /^\d+$/.test(y);
    if (numeric) return Number(x) - Number(y);
    if (x === '') return -1;
    if (y === '') return 1;
    return x < y ? -1 : 1;
  }
  return 0;
}
