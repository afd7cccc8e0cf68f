// The `vmsight` executable as the tests spawn it: bin/vmsight.js over the TypeScript sources (no build needed).
import { main } from '../../../src/cli/main.js';
process.exitCode = await main(process.argv.slice(2));
