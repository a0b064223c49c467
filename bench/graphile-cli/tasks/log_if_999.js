// The no-op task of graphile-worker's perfTest.
module.exports = async ({ id }) => {
  if (id === 999) console.log("Found 999!");
};
