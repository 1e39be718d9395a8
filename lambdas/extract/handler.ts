// Placeholder: the real handler lands with the agent core.
export const handler = async (event: unknown): Promise<unknown> => {
  throw new Error(`extract handler not implemented yet: ${JSON.stringify(event).slice(0, 80)}`);
};
