// amazon-chime-sdk-js's messaging session needs the AWS SDK messaging client; the console only joins
// audio, so the bundle gets this empty module instead (keeps the AWS SDK and its Node.js-only
// credential providers out of the browser bundle).
module.exports = {};
