// Placeholder: the real handler lands with the agent core.
export const handler = async (event: unknown): Promise<unknown> => {
  throw new Error(`ingest handler not implemented yet: ${JSON.stringify(event).slice(0, 80)}`);
};
