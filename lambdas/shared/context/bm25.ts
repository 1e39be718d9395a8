/**
 * Okapi BM25 (Robertson & Zaragoza, "The Probabilistic Relevance Framework: BM25 and Beyond",
 * 2009), with the non-negative IDF variant used by Lucene: ln(1 + (N - n + 0.5) / (n + 0.5)).
 * Twenty lines of arithmetic: not worth a dependency.
 */
export interface Bm25Options {
  /** Term-frequency saturation. @default 1.2 */
  k1?: number;
  /** Length normalization. @default 0.75 */
  b?: number;
}

const STOPWORDS = new Set(
  "a an and are as at be by for from has have i in is it its of on or our please that the this to was we were will with you your hi hello thanks regards".split(
    " ",
  ),
);

/** Lowercased word and number terms with a light suffix strip, so `deliveries` meets `delivery`. */
export function terms(text: string): string[] {
  const out: string[] = [];
  for (const raw of text.toLowerCase().split(/[^a-z0-9]+/)) {
    if (raw.length === 0 || STOPWORDS.has(raw)) continue;
    out.push(stem(raw));
  }
  return out;
}

function stem(word: string): string {
  if (/^\d/.test(word) || word.length <= 4) return word;
  for (const suffix of ["ations", "ation", "ing", "ies", "ed", "es", "s"]) {
    if (word.endsWith(suffix) && word.length - suffix.length >= 3) {
      return suffix === "ies" ? `${word.slice(0, -3)}y` : word.slice(0, -suffix.length);
    }
  }
  return word;
}

/** Scores every document against a query; documents are already split into terms. */
export class Bm25Index {
  private readonly docs: Map<string, number>[];
  private readonly lengths: number[];
  private readonly avgLength: number;
  private readonly df = new Map<string, number>();
  private readonly k1: number;
  private readonly b: number;

  constructor(documents: readonly string[][], options: Bm25Options = {}) {
    this.k1 = options.k1 ?? 1.2;
    this.b = options.b ?? 0.75;
    this.docs = documents.map((doc) => {
      const tf = new Map<string, number>();
      for (const t of doc) tf.set(t, (tf.get(t) ?? 0) + 1);
      for (const t of tf.keys()) this.df.set(t, (this.df.get(t) ?? 0) + 1);
      return tf;
    });
    this.lengths = documents.map((d) => d.length);
    this.avgLength = this.lengths.reduce((s, n) => s + n, 0) / Math.max(1, documents.length);
  }

  idf(term: string): number {
    const n = this.df.get(term) ?? 0;
    return Math.log(1 + (this.docs.length - n + 0.5) / (n + 0.5));
  }

  /** One score per document, in document order. Repeated query terms count once. */
  scores(query: readonly string[]): number[] {
    const unique = [...new Set(query)];
    const idf = unique.map((t) => this.idf(t));
    return this.docs.map((tf, i) => {
      const len = this.lengths[i] ?? 0;
      const norm = this.k1 * (1 - this.b + (this.b * len) / (this.avgLength || 1));
      let score = 0;
      unique.forEach((t, j) => {
        const f = tf.get(t) ?? 0;
        if (f > 0) score += (idf[j] ?? 0) * ((f * (this.k1 + 1)) / (f + norm));
      });
      return score;
    });
  }
}
