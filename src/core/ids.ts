/** Service and backend ids as core checks them: the rules are the contract's (../contract/ids.ts). */
import { idProblem } from "../contract/ids.ts";
import { ValidationError } from "./errors.ts";

/** Returns `id` when it is a valid id; throws a ValidationError naming `field` ("service" or "backend") otherwise. */
export function checkId(field: string, id: string): string {
  const problem = idProblem(id);
  if (problem !== null) throw new ValidationError(field, problem);
  return id;
}
