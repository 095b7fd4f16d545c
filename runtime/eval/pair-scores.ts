// Every pair of samples scored once, split into same-person (genuine) and different-person (impostor).

export function allPairScores<T>(
  persons: string[],
  vectors: T[],
  similarity: (a: T, b: T) => number,
): { genuine: Float64Array; impostor: Float64Array } {
  let same = 0;
  for (let i = 0; i < persons.length; i++)
    for (let j = i + 1; j < persons.length; j++) if (persons[i] === persons[j]) same++;
  const total = (persons.length * (persons.length - 1)) / 2;
  const genuine = new Float64Array(same);
  const impostor = new Float64Array(total - same);
  let g = 0;
  let m = 0;
  for (let i = 0; i < persons.length; i++) {
    for (let j = i + 1; j < persons.length; j++) {
      const s = similarity(vectors[i], vectors[j]);
      if (persons[i] === persons[j]) genuine[g++] = s;
      else impostor[m++] = s;
    }
  }
  return { genuine, impostor };
}
