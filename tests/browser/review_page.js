// SPDX-License-Identifier: Apache-2.0
// The reviewers' page in headless Chromium: enter a token, load the held
// requests, check the statement is shown as text (never markup), approve
// one with a reason. Usage: node review_page.js URL TOKEN REVIEW_ID
// Prints one JSON line: {"row": text of the row, "markup": elements in
// the statement's cell, "status": the page's status after approving}.
"use strict";
const puppeteer = require("puppeteer-core");

async function main() {
  const [url, token, id] = process.argv.slice(2);
  const browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--headless=new"],
  });
  try {
    const page = await browser.newPage();
    const errors = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    await page.goto(url, { waitUntil: "load" });
    await page.type("#token", token);
    await page.click("#load");
    const row = "#review-" + id;
    await page.waitForSelector(row, { timeout: 10000 });
    const text = await page.$eval(row, (r) => r.textContent);
    const markup = await page.$eval(row, (r) => r.querySelectorAll("td code *").length);
    await page.type(row + " .reason", "looks fine from the page");
    await page.click(row + " .approve");
    await page.waitForFunction(
      (id) => document.getElementById("status").textContent.startsWith("review " + id + ":"),
      { timeout: 10000 }, id);
    const status = await page.$eval("#status", (s) => s.textContent);
    console.log(JSON.stringify({ row: text, markup, status, errors }));
  } finally {
    await browser.close();
  }
}

main().catch((e) => { console.error(String(e)); process.exit(1); });
